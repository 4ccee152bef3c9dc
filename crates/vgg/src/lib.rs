//! vgg
