"""Multitask (classification, segmentation, detection) heads' losses, batches and stand-alone training (torch).

``_tasks`` (the heads' losses, FCOS targets, decoding and NMS), ``_batches`` (a split as device tensors with its
detection targets; one task's loss of a network's outputs) and ``_train`` (train one single-task network from
scratch and score it: accuracy, mIoU, COCO mAP). They serve the FBNetV5 supernet trainer
(``nas.evaluators.supernet``) and the searcher's final trainings. Private so that discovering evaluators does not
import torch.
"""
