//! host driver
