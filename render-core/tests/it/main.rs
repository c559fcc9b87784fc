mod compositor;
