mod archive;
mod broken;
mod load;
mod sanitize;
mod schema;
mod support;
mod timeline;
mod tokens;
