//! Data sets: NumPy arrays and batching.

pub mod npy;
