"""Past one machine: the heavy batch steps (scoring, featurizing) on a Ray cluster."""
