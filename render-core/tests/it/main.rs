mod compositor;
mod render;
mod support;
