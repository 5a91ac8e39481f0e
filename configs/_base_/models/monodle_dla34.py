# MonoDLE (CVPR'21): DLA-34 -> DLAUp -> CenterNet3DHead, 1280 x 384 input, output stride 4.
model = dict(
    type='MonoDLE',
    # images are loaded BGR by mmcv; MonoDLE normalises RGB / 255 with ImageNet mean / std
    data_preprocessor=dict(
        type='Det3DDataPreprocessor',
        mean=[123.675, 116.28, 103.53],
        std=[58.395, 57.12, 57.375],
        bgr_to_rgb=True,
        pad_size_divisor=32,
        # copies to the GPU (images from pinned memory, the samples' packed targets) do not
        # wait for the GPU's queue; no effect on CPU
        non_blocking=True),
    backbone=dict(
        type='DLANet',
        depth=34,
        in_channels=3,
        out_indices=(2, 3, 4, 5),  # strides 4, 8, 16, 32
        norm_cfg=dict(type='BN'),
        # MonoDLE starts from ImageNet DLA-34 (dl.yf.io dla34-ba72cf86.pth); convert it with
        # `python tools/convert_monodle_checkpoint.py --imagenet-dla34 IN OUT` (BN names
        # bn* -> norm*) and set init_cfg=dict(type='Pretrained', checkpoint=OUT).
        init_cfg=None),
    neck=dict(type='DLAUp', in_channels=[64, 128, 256, 512], strides=[4, 8, 16, 32]),
    bbox_head=dict(
        type='CenterNet3DHead',
        num_classes=3,
        in_channels=64,
        feat_channels=256,
        # target encoding and decoding (MonoDLE's __getitem__ / decode_detections)
        bbox_coder=dict(
            type='MonoDLEBBoxCoder',
            num_classes=3,
            class_names=['Pedestrian', 'Car', 'Cyclist'],  # label order
            writelist=['Car'],
            max_objs=50,
            min_depth=2.0,
            max_depth=65.0,
            use_3d_center=True,
            num_heading_bins=12,
            use_mean_size=False,
            down_ratio=4),
        # one convolution for the seven 3x3 branch convs: same numbers, but measured slower
        # on CPU than seven convs (see CenterNet3DHead's docstring); True to try it
        fuse_branches=False,
        loss_heatmap=dict(type='CornerNetFocalLoss', loss_weight=1.0),
        loss_offset_2d=dict(type='mmdet.L1Loss', loss_weight=1.0),
        loss_size_2d=dict(type='mmdet.L1Loss', loss_weight=1.0),
        loss_depth=dict(type='LaplacianAleatoricDepthLoss', loss_weight=1.0),
        loss_offset_3d=dict(type='mmdet.L1Loss', loss_weight=1.0),
        loss_size_3d=dict(type='DimAwareL1Loss', loss_weight=1.0),
        loss_heading=dict(type='MultiBinHeadingLoss', num_bins=12, loss_weight=1.0),
        loss_depth_distill=None,
        test_cfg=dict(topk=50, score_thr=0.2, nms_kernel=3, decode_mode='official')),
    train_cfg=None,
    test_cfg=None)
