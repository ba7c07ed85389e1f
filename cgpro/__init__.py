"""cgpro: a carrier-grade Internet communications server on Twisted."""

__version__ = "0.1.0"
