//! lenet
