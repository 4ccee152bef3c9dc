//! inception
