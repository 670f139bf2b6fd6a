"""Where the add-on finds `retarget`: inside the built extension, or beside it in a checkout.

The extension zip ships retarget/ as a subpackage (Blender installs each extension as a package
of its own); a development checkout keeps it at the top level next to mosa_blender/.
"""
try:
    from . import retarget  # noqa: F401  (the installed extension)
except ImportError:
    import retarget  # noqa: F401  (a development checkout)
