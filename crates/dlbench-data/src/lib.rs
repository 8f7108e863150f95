//! dlbench-data: datasets (seeded synthetic generators, .npy / .npz / .csv files), splits,
//! batching and metrics.
