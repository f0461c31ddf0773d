"""berthd: the Docker Engine API, images, and the berth CLI."""
