//! Atlas storage: the images the compositor samples, laid end to end in one buffer.
//!
//! Scenes build their static and video atlases as [`Texels`], the GPU compositor uploads them
//! as they are, and a layer's `rect` (as [`Texels::push`] returns it) says where its image lies.

/// Images laid end to end as packed premultiplied RGBA8 texels: the layout of the
/// compositor's atlas buffers. Each image occupies `width*height` consecutive texels.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Texels {
    /// Four bytes per texel: R, G, B, A, premultiplied.
    pub pixels: Vec<u8>,
}

impl Texels {
    /// An empty buffer.
    pub fn new() -> Self {
        Self::default()
    }

    /// Number of texels.
    pub fn len(&self) -> usize {
        self.pixels.len() / 4
    }

    /// True when no texel is stored.
    pub fn is_empty(&self) -> bool {
        self.pixels.is_empty()
    }

    /// Appends a `width`x`height` image (`width*height*4` bytes) and returns its rectangle:
    /// first texel, row stride, width, height.
    pub fn push(&mut self, width: u32, height: u32, pixels: &[u8]) -> [u32; 4] {
        let base = self.len() as u32;
        let bytes = width as usize * height as usize * 4;
        self.pixels
            .extend_from_slice(&pixels[..bytes.min(pixels.len())]);
        self.pixels
            .resize(self.pixels.len() + bytes - bytes.min(pixels.len()), 0);
        [base, width, width, height]
    }

    /// Overwrites the image at `rect` (as returned by [`Self::push`]) with `pixels`.
    pub fn write(&mut self, rect: [u32; 4], pixels: &[u8]) {
        let start = rect[0] as usize * 4;
        let bytes = rect[2] as usize * rect[3] as usize * 4;
        self.pixels[start..start + bytes].copy_from_slice(&pixels[..bytes]);
    }

    /// The image at `rect` as bytes.
    pub fn image(&self, rect: [u32; 4]) -> &[u8] {
        let start = rect[0] as usize * 4;
        &self.pixels[start..start + rect[2] as usize * rect[3] as usize * 4]
    }
}
