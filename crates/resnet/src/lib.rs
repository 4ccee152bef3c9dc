//! resnet
