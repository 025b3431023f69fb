"""POCare: the quality system of a point-of-care manufacturing network for cell and gene therapies."""

__version__ = "0.1.0"
