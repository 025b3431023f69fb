"""Views of the masterfile app."""
