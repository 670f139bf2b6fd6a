"""MoSa for Blender: text-to-motion on your own rig. (Registration arrives with the extension issue.)"""
