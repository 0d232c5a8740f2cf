"""ESPnet task classes of this project, with their component registries."""
