//! The wgpu compute compositor.
//!
//! One compute pass composites every layer of a frame straight into planar YUV 4:2:0 (or, for
//! stills and tests, packed RGBA8), so video readback carries 1.5 bytes per pixel and no RGBA
//! frame is ever stored. Frames are submitted into a ring of
//! staging buffers: while frame `n` is read back, frames `n+1..n+ring` are already queued, so the
//! CPU side (decode, encode) never waits on a single frame's round trip.
//!
//! Static layer pixels (text, images, shapes) are uploaded once per job; decoded video frames
//! follow them in the same storage buffer and are rewritten every frame. It is a buffer of
//! packed RGBA8 rather than textures: the shader does its own bilinear filtering, and on
//! software Vulkan (lavapipe) a buffer load is several times cheaper than a texel fetch.
//! Every frame also carries a layer mask per 64x2-pixel tile, so each pixel visits only the
//! layers that can touch it.

use std::collections::VecDeque;
use std::sync::mpsc;

use shaders::{FrameUniforms, GpuLayer};

use crate::atlas::Texels;

/// Most layers one frame may composite.
pub const MAX_LAYERS: usize = 64;

/// Frames in flight between submission and readback.
pub const DEFAULT_RING: usize = 3;

/// A GPU failure, with what was being attempted.
#[derive(Debug, thiserror::Error)]
pub enum GpuError {
    /// No adapter matched; on machines without a GPU, install Mesa's lavapipe.
    #[error("no GPU adapter found (on a machine without a GPU, install mesa-vulkan-drivers for lavapipe): {0}")]
    NoAdapter(String),
    /// The adapter refused to create a device.
    #[error("GPU device creation failed on `{adapter}`: {message}")]
    Device {
        /// Adapter name.
        adapter: String,
        /// wgpu's message.
        message: String,
    },
    /// A size exceeds what the adapter supports.
    #[error("{what} {value} exceeds the GPU limit {limit}")]
    Limit {
        /// What was too large.
        what: &'static str,
        /// Requested value.
        value: u64,
        /// The adapter's limit.
        limit: u64,
    },
    /// Canvas dimensions the shaders cannot handle.
    #[error("canvas {width}x{height}: width must be a multiple of 8 and height a multiple of 2")]
    Canvas {
        /// Width in pixels.
        width: u32,
        /// Height in pixels.
        height: u32,
    },
    /// More layers than [`MAX_LAYERS`].
    #[error("{0} layers in one frame; at most {MAX_LAYERS} are supported")]
    TooManyLayers(usize),
    /// Reading a frame back failed.
    #[error("GPU readback failed: {0}")]
    Readback(String),
    /// A wgpu validation or out-of-memory error.
    #[error("GPU error while {context}: {message}")]
    Wgpu {
        /// What the compositor was doing.
        context: &'static str,
        /// wgpu's message.
        message: String,
    },
}

/// What the adapter is, for reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdapterSummary {
    /// Adapter name, e.g. `llvmpipe (LLVM 15.0.6, 256 bits)` or `NVIDIA H100 80GB HBM3`.
    pub name: String,
    /// Backend, e.g. `Vulkan`.
    pub backend: String,
    /// `DiscreteGpu`, `Cpu`, ...
    pub device_type: String,
    /// Driver name and version.
    pub driver: String,
}

impl AdapterSummary {
    /// Whether the adapter renders on the CPU: wgpu says `Cpu`, or the name is a known
    /// software rasterizer (llvmpipe, lavapipe, SwiftShader, WARP). Such a worker works but is
    /// slow; operators look for it in `reelfarm_worker_info`.
    pub fn is_software(&self) -> bool {
        let name = self.name.to_ascii_lowercase();
        self.device_type == "Cpu"
            || [
                "llvmpipe",
                "lavapipe",
                "swiftshader",
                "microsoft basic render",
            ]
            .iter()
            .any(|s| name.contains(s))
    }

    /// The device type in snake case, as metrics label it: `discrete_gpu`, `integrated_gpu`,
    /// `virtual_gpu`, `cpu`, `other`.
    pub fn device_type_label(&self) -> String {
        let mut out = String::new();
        for (i, c) in self.device_type.chars().enumerate() {
            if c.is_ascii_uppercase() && i > 0 {
                out.push('_');
            }
            out.push(c.to_ascii_lowercase());
        }
        out
    }
}

impl std::fmt::Display for AdapterSummary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} ({}, {}, {})",
            self.name, self.backend, self.device_type, self.driver
        )
    }
}

/// An open GPU device; create once and share across jobs.
pub struct GpuContext {
    device: wgpu::Device,
    queue: wgpu::Queue,
    adapter: AdapterSummary,
    layout: wgpu::BindGroupLayout,
    rgba: wgpu::ComputePipeline,
    yuv: wgpu::ComputePipeline,
}

impl std::fmt::Debug for GpuContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GpuContext")
            .field("adapter", &self.adapter)
            .finish_non_exhaustive()
    }
}

fn storage(binding: u32, read_only: bool) -> wgpu::BindGroupLayoutEntry {
    wgpu::BindGroupLayoutEntry {
        binding,
        visibility: wgpu::ShaderStages::COMPUTE,
        ty: wgpu::BindingType::Buffer {
            ty: wgpu::BufferBindingType::Storage { read_only },
            has_dynamic_offset: false,
            min_binding_size: None,
        },
        count: None,
    }
}

fn uniform(binding: u32) -> wgpu::BindGroupLayoutEntry {
    wgpu::BindGroupLayoutEntry {
        binding,
        visibility: wgpu::ShaderStages::COMPUTE,
        ty: wgpu::BindingType::Buffer {
            ty: wgpu::BufferBindingType::Uniform,
            has_dynamic_offset: false,
            min_binding_size: None,
        },
        count: None,
    }
}

impl GpuContext {
    /// Opens the best available Vulkan adapter (a discrete GPU if present, else lavapipe).
    /// `WGPU_BACKEND` and `WGPU_ADAPTER_NAME` environment variables are honoured.
    pub fn new() -> Result<Self, GpuError> {
        let mut desc = wgpu::InstanceDescriptor::new_without_display_handle();
        desc.backends = wgpu::Backends::VULKAN;
        let desc = desc.with_env();
        let instance = wgpu::Instance::new(desc);
        let adapter = pollster::block_on(instance.request_adapter(&wgpu::RequestAdapterOptions {
            power_preference: wgpu::PowerPreference::HighPerformance,
            force_fallback_adapter: false,
            compatible_surface: None,
            apply_limit_buckets: false,
        }))
        .map_err(|e| GpuError::NoAdapter(e.to_string()))?;
        let info = adapter.get_info();
        let summary = AdapterSummary {
            name: info.name.clone(),
            backend: format!("{:?}", info.backend),
            device_type: format!("{:?}", info.device_type),
            driver: format!("{} {}", info.driver, info.driver_info)
                .trim()
                .to_owned(),
        };
        let limits = wgpu::Limits {
            max_storage_buffer_binding_size: adapter.limits().max_storage_buffer_binding_size,
            max_buffer_size: adapter.limits().max_buffer_size,
            max_texture_dimension_2d: adapter.limits().max_texture_dimension_2d,
            ..wgpu::Limits::default()
        };
        let (device, queue) = pollster::block_on(adapter.request_device(&wgpu::DeviceDescriptor {
            label: Some("reelfarm"),
            required_features: wgpu::Features::empty(),
            required_limits: limits,
            experimental_features: wgpu::ExperimentalFeatures::disabled(),
            memory_hints: wgpu::MemoryHints::Performance,
            trace: wgpu::Trace::Off,
        }))
        .map_err(|e| GpuError::Device {
            adapter: summary.name.clone(),
            message: e.to_string(),
        })?;

        let layout = device.create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor {
            label: Some("composite"),
            entries: &[
                uniform(0),
                storage(1, true),
                storage(2, true),
                storage(3, true),
                storage(4, false),
            ],
        });
        let rgba = pipeline(&device, &layout, shaders::RGBA_WGSL, "rgba");
        let yuv = pipeline(&device, &layout, shaders::YUV420_WGSL, "yuv420");
        Ok(Self {
            device,
            queue,
            adapter: summary,
            layout,
            rgba,
            yuv,
        })
    }

    /// The adapter in use.
    pub fn adapter(&self) -> &AdapterSummary {
        &self.adapter
    }
}

fn pipeline(
    device: &wgpu::Device,
    layout: &wgpu::BindGroupLayout,
    source: &str,
    label: &'static str,
) -> wgpu::ComputePipeline {
    let module = device.create_shader_module(wgpu::ShaderModuleDescriptor {
        label: Some(label),
        source: wgpu::ShaderSource::Wgsl(source.into()),
    });
    let pipeline_layout = device.create_pipeline_layout(&wgpu::PipelineLayoutDescriptor {
        label: Some(label),
        bind_group_layouts: &[Some(layout)],
        immediate_size: 0,
    });
    device.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
        label: Some(label),
        layout: Some(&pipeline_layout),
        module: &module,
        entry_point: Some("cs_main"),
        compilation_options: wgpu::PipelineCompilationOptions::default(),
        cache: None,
    })
}

/// What a submitted frame reads back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Readback {
    /// Planar YUV 4:2:0, `width*height*3/2` bytes.
    Yuv420,
    /// Packed RGBA8 (premultiplied), `width*height*4` bytes.
    Rgba,
}

struct Slot {
    staging: wgpu::Buffer,
    mapped: Option<mpsc::Receiver<Result<(), wgpu::BufferAsyncError>>>,
    readback: Readback,
    submission: Option<wgpu::SubmissionIndex>,
    tag: u64,
}

/// Composites frames of one job at one canvas size.
pub struct Compositor<'a> {
    ctx: &'a GpuContext,
    width: u32,
    height: u32,
    uniforms: wgpu::Buffer,
    layers: wgpu::Buffer,
    texels: wgpu::Buffer,
    video_base: u32,
    tiles: wgpu::Buffer,
    tiles_x: u32,
    tile_masks: Vec<[u32; 2]>,
    gpu_layers: Vec<GpuLayer>,
    output: wgpu::Buffer,
    group: wgpu::BindGroup,
    slots: Vec<Slot>,
    in_flight: VecDeque<usize>,
    next_slot: usize,
}

impl std::fmt::Debug for Compositor<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Compositor")
            .field("width", &self.width)
            .field("height", &self.height)
            .field("in_flight", &self.in_flight.len())
            .finish_non_exhaustive()
    }
}

fn atlas_buffer(
    ctx: &GpuContext,
    label: &'static str,
    atlas: &Texels,
    video: &Texels,
) -> Result<wgpu::Buffer, GpuError> {
    let bytes = ((atlas.pixels.len() + video.pixels.len()) as u64).max(4);
    let limit = ctx.device.limits().max_storage_buffer_binding_size;
    if bytes > limit {
        return Err(GpuError::Limit {
            what: label,
            value: bytes,
            limit,
        });
    }
    let buffer = ctx.device.create_buffer(&wgpu::BufferDescriptor {
        label: Some(label),
        size: bytes.div_ceil(4) * 4,
        usage: wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_DST,
        mapped_at_creation: false,
    });
    if !atlas.is_empty() {
        ctx.queue.write_buffer(&buffer, 0, &atlas.pixels);
    }
    if !video.is_empty() {
        ctx.queue
            .write_buffer(&buffer, atlas.pixels.len() as u64, &video.pixels);
    }
    Ok(buffer)
}

impl<'a> Compositor<'a> {
    /// Prepares a compositor for a `width`x`height` canvas with the job's static `atlas` and
    /// the initial `video` atlas (its size is fixed for the job), keeping up to `ring` frames
    /// in flight.
    pub fn new(
        ctx: &'a GpuContext,
        width: u32,
        height: u32,
        atlas: &Texels,
        video: &Texels,
        ring: usize,
    ) -> Result<Self, GpuError> {
        if !width.is_multiple_of(8) || !height.is_multiple_of(2) || width == 0 || height == 0 {
            return Err(GpuError::Canvas { width, height });
        }
        let device = &ctx.device;
        let pixels = u64::from(width) * u64::from(height);
        let max_binding = device.limits().max_storage_buffer_binding_size;
        if pixels * 4 > max_binding {
            return Err(GpuError::Limit {
                what: "frame buffer bytes",
                value: pixels * 4,
                limit: max_binding,
            });
        }
        let scope = device.push_error_scope(wgpu::ErrorFilter::Validation);
        let uniforms = device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("frame uniforms"),
            size: std::mem::size_of::<FrameUniforms>() as u64,
            usage: wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        let layers = device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("layers"),
            size: (std::mem::size_of::<GpuLayer>() * MAX_LAYERS) as u64,
            usage: wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        let video_base = atlas.len() as u32;
        let texels = atlas_buffer(ctx, "atlases", atlas, video)?;
        let tiles_x = width.div_ceil(shaders::TILE_WIDTH);
        let tile_count = tiles_x as usize * height.div_ceil(shaders::TILE_HEIGHT) as usize;
        let tiles = device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("tile masks"),
            size: (tile_count * 8) as u64,
            usage: wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        let output = device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("output"),
            size: pixels * 4,
            usage: wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_SRC,
            mapped_at_creation: false,
        });
        let group = device.create_bind_group(&wgpu::BindGroupDescriptor {
            label: Some("composite"),
            layout: &ctx.layout,
            entries: &[
                wgpu::BindGroupEntry {
                    binding: 0,
                    resource: uniforms.as_entire_binding(),
                },
                wgpu::BindGroupEntry {
                    binding: 1,
                    resource: layers.as_entire_binding(),
                },
                wgpu::BindGroupEntry {
                    binding: 2,
                    resource: texels.as_entire_binding(),
                },
                wgpu::BindGroupEntry {
                    binding: 3,
                    resource: tiles.as_entire_binding(),
                },
                wgpu::BindGroupEntry {
                    binding: 4,
                    resource: output.as_entire_binding(),
                },
            ],
        });
        let slots = (0..ring.max(1))
            .map(|_| Slot {
                staging: device.create_buffer(&wgpu::BufferDescriptor {
                    label: Some("staging"),
                    size: pixels * 4,
                    usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
                    mapped_at_creation: false,
                }),
                mapped: None,
                readback: Readback::Yuv420,
                submission: None,
                tag: 0,
            })
            .collect();
        if let Some(err) = pollster::block_on(scope.pop()) {
            return Err(GpuError::Wgpu {
                context: "allocating compositor resources",
                message: err.to_string(),
            });
        }
        Ok(Self {
            ctx,
            width,
            height,
            uniforms,
            layers,
            texels,
            video_base,
            tiles,
            tiles_x,
            tile_masks: vec![[0, 0]; tile_count],
            gpu_layers: Vec::with_capacity(MAX_LAYERS),
            output,
            group,
            slots,
            in_flight: VecDeque::new(),
            next_slot: 0,
        })
    }

    /// Replaces the image at `rect` (as laid out by [`Texels::push`]) in the video atlas with
    /// `rgba` (w*h*4 bytes, premultiplied) for the next submitted frame.
    pub fn upload_video(&self, rect: [u32; 4], rgba: &[u8]) {
        let bytes = rect[2] as usize * rect[3] as usize * 4;
        let data = &rgba[..bytes.min(rgba.len())];
        let offset = u64::from(self.video_base + rect[0]) * 4;
        self.ctx.queue.write_buffer(&self.texels, offset, data);
    }

    /// Per-tile masks of the layers whose bounding box touches each tile.
    fn build_tile_masks(&mut self, layers: &[GpuLayer]) {
        self.tile_masks.fill([0, 0]);
        let (tw, th) = (shaders::TILE_WIDTH as i32, shaders::TILE_HEIGHT as i32);
        for (i, l) in layers.iter().enumerate() {
            let [x0, y0, x1, y1] = l.bbox;
            if x0 >= x1 || y0 >= y1 {
                continue;
            }
            let (word, bit) = (i / 32, 1u32 << (i % 32));
            for ty in (y0 / th)..=((y1 - 1) / th) {
                let row = ty as usize * self.tiles_x as usize;
                for tx in (x0 / tw)..=((x1 - 1) / tw) {
                    if let Some(mask) = self.tile_masks.get_mut(row + tx as usize) {
                        mask[word] |= bit;
                    }
                }
            }
        }
    }

    /// True when [`Self::submit`] would first have to wait for the oldest frame.
    pub fn is_full(&self) -> bool {
        self.in_flight.len() == self.slots.len()
    }

    /// Queues one frame: composite `layers` over `background` (premultiplied), convert, and copy
    /// into the next staging buffer. `tag` comes back with the pixels. Call [`Self::read_oldest`]
    /// first when [`Self::is_full`].
    pub fn submit(
        &mut self,
        background: [f32; 4],
        layers: &[GpuLayer],
        readback: Readback,
        tag: u64,
    ) -> Result<(), GpuError> {
        if layers.len() > MAX_LAYERS {
            return Err(GpuError::TooManyLayers(layers.len()));
        }
        if self.is_full() {
            return Err(GpuError::Readback(
                "ring full: read the oldest frame before submitting".to_owned(),
            ));
        }
        let uniforms = FrameUniforms {
            width: self.width,
            height: self.height,
            layer_count: layers.len() as u32,
            tiles_x: self.tiles_x,
            background,
        };
        // Both atlases share one buffer: video texels start after the static ones.
        self.gpu_layers.clear();
        self.gpu_layers.extend(layers.iter().map(|l| {
            let mut l = *l;
            if l.source == shaders::source::VIDEO {
                l.rect[0] += self.video_base;
            }
            l
        }));
        self.build_tile_masks(layers);
        let queue = &self.ctx.queue;
        queue.write_buffer(&self.uniforms, 0, bytemuck::bytes_of(&uniforms));
        if !layers.is_empty() {
            queue.write_buffer(&self.layers, 0, bytemuck::cast_slice(&self.gpu_layers));
        }
        queue.write_buffer(&self.tiles, 0, bytemuck::cast_slice(&self.tile_masks));
        let index = self.next_slot;
        self.next_slot = (self.next_slot + 1) % self.slots.len();
        let mut encoder = self
            .ctx
            .device
            .create_command_encoder(&wgpu::CommandEncoderDescriptor {
                label: Some("frame"),
            });
        {
            let mut pass = encoder.begin_compute_pass(&wgpu::ComputePassDescriptor {
                label: Some("composite"),
                timestamp_writes: None,
            });
            pass.set_bind_group(0, &self.group, &[]);
            pass.set_pipeline(match readback {
                Readback::Yuv420 => &self.ctx.yuv,
                Readback::Rgba => &self.ctx.rgba,
            });
            // Both entry points take one 8x2 block per invocation.
            let blocks = (self.width / 8) * (self.height / 2);
            pass.dispatch_workgroups(blocks.div_ceil(shaders::WORKGROUP_SIZE), 1, 1);
        }
        let pixels = u64::from(self.width) * u64::from(self.height);
        let bytes = match readback {
            Readback::Yuv420 => pixels * 3 / 2,
            Readback::Rgba => pixels * 4,
        };
        let slot = &mut self.slots[index];
        encoder.copy_buffer_to_buffer(&self.output, 0, &slot.staging, 0, bytes);
        let submission = queue.submit([encoder.finish()]);
        let (tx, rx) = mpsc::sync_channel(1);
        slot.staging
            .slice(0..bytes)
            .map_async(wgpu::MapMode::Read, move |result| {
                // The receiver may be gone if the compositor was dropped mid-flight.
                let _ = tx.send(result);
            });
        slot.mapped = Some(rx);
        slot.readback = readback;
        slot.submission = Some(submission);
        slot.tag = tag;
        self.in_flight.push_back(index);
        Ok(())
    }

    /// Waits for the oldest submitted frame and copies its pixels into `out` (resized to fit).
    /// Returns its tag, or `None` when nothing is in flight.
    pub fn read_oldest(&mut self, out: &mut Vec<u8>) -> Result<Option<u64>, GpuError> {
        let Some(index) = self.in_flight.pop_front() else {
            return Ok(None);
        };
        let slot = &mut self.slots[index];
        let pixels = self.width as usize * self.height as usize;
        let bytes = match slot.readback {
            Readback::Yuv420 => pixels * 3 / 2,
            Readback::Rgba => pixels * 4,
        };
        let rx = slot
            .mapped
            .take()
            .ok_or_else(|| GpuError::Readback("slot was not submitted".to_owned()))?;
        self.ctx
            .device
            .poll(wgpu::PollType::Wait {
                submission_index: slot.submission.take(),
                timeout: None,
            })
            .map_err(|e| GpuError::Readback(e.to_string()))?;
        rx.recv()
            .map_err(|_| GpuError::Readback("map callback never ran".to_owned()))?
            .map_err(|e| GpuError::Readback(e.to_string()))?;
        {
            let view = slot
                .staging
                .get_mapped_range(0..bytes as u64)
                .map_err(|e| GpuError::Readback(e.to_string()))?;
            out.clear();
            out.extend_from_slice(&view);
        }
        slot.staging.unmap();
        Ok(Some(slot.tag))
    }
}
