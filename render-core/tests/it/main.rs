mod check;
mod compositor;
mod presenter;
mod render;
mod smart;
mod support;
