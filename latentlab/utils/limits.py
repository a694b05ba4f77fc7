"""Resource limits: the largest sizes latentlab accepts from a file before allocating or building anything.

A file from the internet decides how much memory and time a naive reader spends: a 500-byte pickle can
claim a 50000 x 50000 tensor, a billion-element structure or a network at resolution 2**20. Every reader
checks the sizes a file claims against these limits first and refuses with one line naming the file
(`CheckpointError` / `ConfigError`). Each limit sits far above what any published model or dataset needs;
the comment says why it is where it is. The README's safety section lists them.

Other modules append their own limits below (one constant, one comment each).
"""

# ------------------------------------------------------------------------------------------------ networks
# Largest image resolution a network may declare. Published StyleGAN models stop at 1024 (StyleGAN-XL at
# 1024 too); 4096 leaves 4x headroom, while 2**20 would mean 10**12-pixel noise buffers.
MAX_RESOLUTION = 4096
# Most parameters + buffers one network may have, computed from its constructor kwargs before building.
# FFHQ 1024 has ~30M (G) and ~29M (D); 500M (2 GB of float32) leaves >10x headroom.
MAX_PARAMS = 500_000_000
# Largest latent/label/feature width (z_dim, w_dim, c_dim, layer_features, cmap_dim, ...). Models use 512.
MAX_DIM = 16384
# Largest channel count of a layer (channel_max, fmap_max, mapping features); models use 512.
MAX_CHANNELS = 16384
# Largest channel_base / fmap_base: enough for MAX_CHANNELS channels at MAX_RESOLUTION.
MAX_CHANNEL_BASE = MAX_CHANNELS * MAX_RESOLUTION
# Image channels (1 grey, 3 RGB, 4 RGBA); 16 leaves room for multispectral data.
MAX_IMG_CHANNELS = 16
# Mapping-network depth; models use 8 (2 in tests). Each layer is a module, so 10**9 would be a time bomb.
MAX_MAPPING_LAYERS = 64
# Taps of a 1-D resample/blur filter ([1, 3, 3, 1] and [1, 2, 1] in every published model).
MAX_FILTER_TAPS = 16
# Minibatch-std group size / extra features of the discriminator epilogue (4 and 1 in published models).
MAX_MBSTD = 256
# Kernel size of a StyleGAN3 layer's convolution (`conv_kernel`: 3 in config T, 1 in R); each layer holds
# channels^2 x kernel^2 weights, and 0 would build empty kernels that only fail when rendering.
MAX_CONV_KERNEL = 16
# Resampling factor between two StyleGAN3 sampling rates, and the nonlinearity's oversampling (`lrelu_upsampling`:
# 2 in every published model; their factors are <= 4). Filters grow with the factor, and each step is a layer.
MAX_RESAMPLING_FACTOR = 16

# ------------------------------------------------------------------------------------------------ tensors
# Elements of one tensor rebuilt from a checkpoint (a view of a storage): a file may not claim more than a
# whole network's worth, whatever its strides say.
MAX_TENSOR_ELEMENTS = MAX_PARAMS
# Elements of all tensors of one checkpoint together (views may share storages, so this bounds what
# copying them costs): G + D + G_ema of the largest allowed networks.
MAX_CHECKPOINT_ELEMENTS = 3 * MAX_PARAMS

# Mapping-network weights (layers x width^2) up to which a rosinality checkpoint without `latent_avg` gets its w_avg
# estimated at load time from 10 000 mapped z (FFHQ: 8 x 512^2 = 2.1M, about a second on one core); larger
# mappings keep w_avg at zero (recorded in the extras) instead of costing minutes per load.
MAX_W_AVG_ESTIMATE_WEIGHTS = 1 << 24

# ------------------------------------------------------------------------------------------------ pickles
# Nesting depth of a pickled structure (containers, objects and their arguments). Official checkpoints
# nest < 60 deep; CPython's unpickler and any recursive walk crash (C stack) far below 10**6.
MAX_PICKLE_DEPTH = 200
# Objects a pickle's structure holds when shared references are counted each time they occur, i.e. what
# walking or copying it costs. Official checkpoints: ~10**4-10**5; a "billion laughs" memo bomb: 10**9+.
MAX_PICKLE_NODES = 20_000_000
# Opcodes in one pickle; a 1024x1024 official checkpoint has well under 10**6 (its weights are a few big
# byte strings).
MAX_PICKLE_OPS = 20_000_000
# Bytes of one pickled integer (LONG1/LONG4); real ones fit in 8, a 100 MB integer makes arithmetic crawl.
MAX_PICKLE_INT_BYTES = 64

# ------------------------------------------------------------------------------------------------ files and inputs
# (JSON, .npy/.npz, datasets: latentlab.utils.safe_json, latentlab.utils.npy, latentlab.datasets.images)
# Nesting of a JSON document. Ours nest <= 6 deep; json's recursive parser (and any walk) fails far below 10**6.
MAX_JSON_DEPTH = 64
# Bytes of one JSON file or metadata string; an index or manifest is kilobytes, and 64 MiB of JSON is ~1 GiB of
# Python objects already.
MAX_JSON_BYTES = 64 << 20
# Bytes of a dataset's dataset.json (labels of a few million images).
MAX_DATASET_JSON_BYTES = 256 << 20
# Arrays in one .npz: latentlab's hold a few (codes, seeds, a noise map per layer).
MAX_NPZ_MEMBERS = 4096
# Uncompressed/compressed size of an .npz member: deflate's best is ~1032:1, so more is a forged header.
MAX_NPZ_RATIO = 1100
# Bytes of one direction (.npy): an S-space direction of a 1024 px model is ~70 KB of float64.
MAX_DIRECTION_BYTES = 64 << 20
# Pixels an image header may claim before decoding: 64x the largest StyleGAN resolution (1024^2).
MAX_IMAGE_PIXELS = 8192 * 8192
# Inflation of a dataset zip's member (and of all members together): images are compressed already (PNG,
# JPEG, ~1:1); only a degenerate image or a bomb inflates more than 200x.
MAX_ZIP_RATIO = 200
# Uncompressed bytes of one file in a dataset zip (an 8192^2 RGB BMP is 192 MiB).
MAX_ZIP_MEMBER_BYTES = 256 << 20
# Class index of a dataset.json label (ImageNet has 1000 classes); each class becomes a one-hot column.
MAX_CLASSES = 100_000
# Length of a float label vector in dataset.json.
MAX_LABEL_DIM = 4096

# ------------------------------------------------------------------------------------------------ command line
# Seeds of one `--seeds` list: a million images is days of work; 10^9 seeds would cost gigabytes before the
# first image (split larger jobs, or use `sample --n`, which streams).
MAX_SEEDS = 1_000_000
# Values of one `--alpha start:stop:count` sweep: each is an image per code.
MAX_ALPHAS = 10_000
# Frames per pair of `interpolate --frames`: each is an image; 10^4 is minutes of video.
MAX_FRAMES = 10_000
# Largest index in a `--layers` range (models have <= 18 ws layers): 0-1000000000 must not build a set of 10^9.
MAX_LAYER_INDEX = 1023

# ------------------------------------------------------------------------------------------------ grids (memory)
# Pixel bytes (rows x cols x (resolution x grid scale)^2 x channels) of one grid that `edit`, `mix`, `interpolate`
# and `truncate` compose in memory, refused before any rendering. They hold the images, the grid and its PNG
# encoding at once (about three times this): 1 GiB is 341 images at 1024 px (an 18 x 18 grid), 5461 at 256 px.
MAX_GRID_BYTES = 1 << 30
# Images in `generate`'s grid.png: the first seeds' only (a million-seed run streams its images to disk; a grid of
# all of them would be a 10^12-pixel picture). 256 = 16 x 16; at large resolutions MAX_GRID_BYTES cuts it further.
MAX_GENERATE_GRID = 256
# Upscaling factor of grid.png's cells (`--grid-scale`): 16 makes a 64 px image a 1024 px cell; more only magnifies
# pixels. The grid's pixel bytes at that scale count against MAX_GRID_BYTES too.
MAX_GRID_SCALE = 16

# ------------------------------------------------------------------------------------------------ explorer (HTTP)
# Bytes of one JSON request body of `latentlab explore` (a page's settings: a seed, a few dozen slider values and
# channel edits, well under 4 KiB); a larger body is refused (413) before it is read.
MAX_EXPLORE_REQUEST_BYTES = 64 << 10
# Bytes of one photo uploaded to `latentlab explore` for projection or encoding (the page sends it already cropped
# and resized to the generator's resolution: ~3 MiB as PNG at 1024 px); refused (413) before it is read.
MAX_EXPLORE_UPLOAD_BYTES = 16 << 20
