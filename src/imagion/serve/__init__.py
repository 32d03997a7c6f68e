"""`imagion serve`: the upload page and JSON API on FastAPI + uvicorn, with limits that hold and
concurrent requests batched into one forward pass."""
