//! What a pull reports as it goes, for the CLI to draw (bars on a terminal, plain lines otherwise).

/// Receives the steps of a pull. Layers are named by their digest (`sha256:…`). Every method has an
/// empty default.
pub trait Progress: Send + Sync {
    /// A line of status, as Docker prints them (`latest: Pulling from library/busybox`).
    fn status(&self, _line: &str) {}
    /// The download of a layer of `size` bytes (0 if the manifest does not say) starts.
    fn layer_started(&self, _digest: &str, _size: u64) {}
    /// `done` bytes of the layer are downloaded.
    fn layer_progress(&self, _digest: &str, _done: u64) {}
    /// The layer is downloaded (`size` bytes) and its digest verified.
    fn layer_downloaded(&self, _digest: &str, _size: u64) {}
    /// The layer is unpacked into the image.
    fn layer_extracted(&self, _digest: &str) {}
    /// The pull failed; drawing should stop.
    fn failed(&self) {}
}

/// A [`Progress`] that reports nothing.
#[derive(Debug, Default, Clone, Copy)]
pub struct Silent;

impl Progress for Silent {}
