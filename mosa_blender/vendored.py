"""Where the add-on finds `retarget`: inside the built extension, or beside it in a checkout.

The extension zip ships retarget/ as a subpackage (Blender installs each extension as a package
of its own); a development checkout keeps it at the top level next to mosa_blender/. The add-on
imports the retarget modules it uses from here.
"""

try:  # the installed extension
    from .retarget import (
        canonical,
        control_rig,
        inverse,
        mapping,
        packed,
        plausibility,
        resample,
        rotations,
        skeleton,
        transfer,
    )  # noqa: F401
except ImportError:  # a development checkout
    from retarget import (  # noqa: F401
        canonical,
        control_rig,
        inverse,
        mapping,
        packed,
        plausibility,
        resample,
        rotations,
        skeleton,
        transfer,
    )
