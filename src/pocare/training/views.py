"""Views of the training app."""
