//! bridge driver
