"""Package data: YAML files read by simulator.catalog."""
