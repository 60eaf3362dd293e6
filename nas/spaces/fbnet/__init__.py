"""FBNet family: the released FBNetV3 networks and the FBNetV5 multitask supernet space."""
