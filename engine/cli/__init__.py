"""The berth CLI: a click front end that speaks the Docker Engine API to berthd."""
