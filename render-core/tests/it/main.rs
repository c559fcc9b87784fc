mod compositor;
mod presenter;
mod render;
mod support;
