//! Small helpers every layer may use: no Vireo types, no GTK, no KVM.

pub mod atomic;
