"""The version, in one place: the package, the build (``[tool.hatch.version]``) and every
module that records it read it from here (a module below the root, so that no import points
up at ``nas_width/__init__``)."""

__version__ = "0.1.0"
