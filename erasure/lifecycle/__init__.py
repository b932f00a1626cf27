"""A request's life: what happens to it between intake and its end."""
