"""The workflows layer, between the adapters (`cli/`, `serve/`) and the domain packages: the
imagion's verbs (`verbs`) and the evaluation protocols that train models to measure them
(`protocols`). `import imagion` offers the verbs."""
