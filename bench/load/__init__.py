"""The web_load_50 scenario's parts (bench/README.md "web_load_50"): the production stack it
starts, the users' plan, the locustfile and the CPU monitor."""
