//! none driver
