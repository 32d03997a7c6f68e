"""`python -m imagion …` (also what `torchrun -m imagion train …` runs)."""

from imagion.cli import main

if __name__ == "__main__":
    main()
