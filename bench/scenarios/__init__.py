"""One module per scenario (or per family of scenarios); see bench/README.md."""
