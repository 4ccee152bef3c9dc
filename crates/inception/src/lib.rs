//! # Inception-v3
//!
//! Home of Inception-v3 (Szegedy et al., "Rethinking the Inception Architecture for Computer
//! Vision", 2016) for the paper's ImageNet experiments. The network itself is the subject of
//! the ImageNet issue (#6); until then this crate holds no model.
