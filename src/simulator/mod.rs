//! The built-in MRA v2 simulator.
pub mod generate;
pub mod id;
pub mod scenario;
