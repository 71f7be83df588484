//! Security uses of attributions.
