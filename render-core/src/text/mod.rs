//! Text shaping and rasterization over the bundled Noto fonts.
