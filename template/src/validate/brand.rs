//! The brand and motion rules of a manifest: entrance and exit presets, stacked text
//! (`below`/`gap`), and brand fonts (declared once, in known languages, files that are one
//! TrueType or OpenType face).

use super::*;

impl Checker<'_> {
    /// `enter` and `exit`: durations in range, fitting the layer's life together, and the
    /// property each preset animates constant in the manifest.
    pub(super) fn motions(&mut self, label: &str, layer: &Layer) {
        let life = layer.end.unwrap_or(self.manifest.duration) - layer.start;
        let mut total = 0.0;
        let mut parts = Vec::new();
        for (field, motion) in [("enter", &layer.enter), ("exit", &layer.exit)] {
            let Some(Motion { preset, duration }) = motion else {
                continue;
            };
            let path = format!("{label}.{field}");
            let d_path = format!("{path}.duration");
            if self.finite(&d_path, *duration) {
                if *duration > 0.0 && *duration <= 10.0 {
                    total += duration;
                    parts.push(format!("{field} {duration} s"));
                } else {
                    self.push(
                        d_path,
                        format!("{duration} is out of range: more than 0, at most 10 seconds"),
                    );
                }
            }
            let keyframed = |a: &Animated<f64>| matches!(a, Animated::Keyframes(_));
            let clash = match preset {
                MotionPreset::Fade => keyframed(&layer.opacity).then_some("opacity"),
                MotionPreset::SlideUp => {
                    if keyframed(&layer.opacity) {
                        Some("opacity")
                    } else if matches!(layer.transform.position, Animated::Keyframes(_)) {
                        Some("transform.position")
                    } else {
                        None
                    }
                }
                MotionPreset::Pop => {
                    if keyframed(&layer.opacity) {
                        Some("opacity")
                    } else if keyframed(&layer.transform.scale) {
                        Some("transform.scale")
                    } else {
                        None
                    }
                }
            };
            if let Some(property) = clash {
                self.push(
                    format!("{path}.preset"),
                    format!(
                        "the preset animates {property}, which has keyframes of its own; make {property} a constant or drop the preset"
                    ),
                );
            }
        }
        if life.is_finite() && total > life + 1e-9 {
            self.push(
                format!("{label}.enter"),
                format!(
                    "{} together are longer than the layer's {life} s on screen; shorten them",
                    parts.join(" and ")
                ),
            );
        }
    }

    /// Text layers' `below`: an earlier text layer, so that stacks are laid out in layer order
    /// and cannot form a cycle.
    pub(super) fn stacks(&mut self) {
        let layers = &self.manifest.layers;
        let mut problems = Vec::new();
        for (index, layer) in layers.iter().enumerate() {
            let LayerContent::Text(t) = &layer.content else {
                continue;
            };
            let Some(upper) = &t.below else {
                continue;
            };
            let path = format!("{}.below", layer_label(index, &layer.id));
            match layers.iter().position(|l| &l.id == upper) {
                None => problems.push(Problem::new(
                    path,
                    format!("`{upper}` is not the id of a layer"),
                )),
                Some(i) if i == index => problems.push(Problem::new(
                    path,
                    "a layer cannot sit below itself; name the text layer above it",
                )),
                Some(i) if i > index => problems.push(Problem::new(
                    path,
                    format!(
                        "`{upper}` is layers[{i}], after this layer; the layer this one sits below must come earlier in `layers`"
                    ),
                )),
                Some(i) if !matches!(layers[i].content, LayerContent::Text(_)) => {
                    problems.push(Problem::new(
                        path,
                        format!("`{upper}` is not a text layer; only text layers can be stacked"),
                    ))
                }
                Some(_) => {}
            }
        }
        self.problems.extend(problems);
    }

    /// The brand fonts: unique ids, known languages, and files that are fonts.
    pub(super) fn fonts(&mut self) {
        let fonts = &self.manifest.fonts;
        if fonts.len() > MAX_FONTS {
            self.push(
                "fonts",
                format!(
                    "{} fonts declared; at most {MAX_FONTS} are accepted",
                    fonts.len()
                ),
            );
        }
        let mut seen: HashMap<&str, usize> = HashMap::new();
        for (i, font) in fonts.iter().enumerate() {
            let path = format!("fonts[{i}]");
            let id_ok = !font.id.is_empty()
                && font.id.len() <= 32
                && font
                    .id
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
            if !id_ok {
                self.push(
                    format!("{path}.id"),
                    format!(
                        "`{}` is not a font id: use 1 to 32 of `a`-`z`, `0`-`9` and `-`",
                        font.id
                    ),
                );
            } else if let Some(first) = seen.get(font.id.as_str()) {
                self.push(
                    format!("{path}.id"),
                    format!(
                        "`{}` is already the id of fonts[{first}]; font ids must be unique",
                        font.id
                    ),
                );
            }
            seen.entry(&font.id).or_insert(i);
            for (j, lang) in font.languages.iter().enumerate() {
                if !self.is_language(lang) {
                    self.push(
                        format!("{path}.languages[{j}]"),
                        format!(
                            "`{lang}` is not one of the template's languages ({})",
                            self.languages_list()
                        ),
                    );
                }
            }
            let src_path = format!("{path}.src");
            let ext_ok = Path::new(&font.src)
                .extension()
                .and_then(|e| e.to_str())
                .is_some_and(|e| e.eq_ignore_ascii_case("ttf") || e.eq_ignore_ascii_case("otf"));
            if !ext_ok {
                self.push(
                    src_path.clone(),
                    format!(
                        "`{}` is not a `.ttf` or `.otf` file; give a TrueType or OpenType font",
                        font.src
                    ),
                );
            }
            let Some(full) = self.media(&src_path, &font.src) else {
                continue;
            };
            let len = std::fs::metadata(&full).map_or(0, |m| m.len());
            if len > MAX_FONT_BYTES {
                self.push(
                    src_path,
                    format!(
                        "`{}` is {len} bytes; a font file may be at most {MAX_FONT_BYTES} bytes",
                        font.src
                    ),
                );
                continue;
            }
            match std::fs::read(&full) {
                Ok(bytes) => {
                    if let Err(why) = check_sfnt(&bytes) {
                        self.push(
                            src_path,
                            format!("`{}` is not a usable font: {why}", font.src),
                        );
                    }
                }
                Err(e) => self.push(src_path, format!("cannot read `{}`: {e}", font.src)),
            }
        }
    }
}

/// Checks that `bytes` is a single TrueType or OpenType font (sfnt) whose table directory lies
/// inside the file and holds the tables shaping and drawing need. Font collections are refused:
/// a brand font is one face.
fn check_sfnt(bytes: &[u8]) -> Result<(), String> {
    let u16_at = |at: usize| -> Option<u16> {
        Some(u16::from_be_bytes(bytes.get(at..at + 2)?.try_into().ok()?))
    };
    let u32_at = |at: usize| -> Option<u32> {
        Some(u32::from_be_bytes(bytes.get(at..at + 4)?.try_into().ok()?))
    };
    let tag = bytes
        .get(..4)
        .ok_or("the file is shorter than a font header")?;
    match tag {
        [0, 1, 0, 0] | b"true" | b"OTTO" => {}
        b"ttcf" => {
            return Err(
                "it is a font collection; give a single-font `.ttf` or `.otf` file".to_owned(),
            )
        }
        b"wOFF" | b"wOF2" => {
            return Err("it is a WOFF web font; give the `.ttf` or `.otf` file".to_owned())
        }
        _ => return Err("it does not start with a TrueType or OpenType header".to_owned()),
    }
    let count = usize::from(u16_at(4).ok_or("the header is cut short")?);
    if count == 0 {
        return Err("its table directory is empty".to_owned());
    }
    let mut tables = BTreeSet::new();
    for i in 0..count {
        let record = 12 + 16 * i;
        let (Some(name), Some(offset), Some(length)) = (
            bytes.get(record..record + 4),
            u32_at(record + 8),
            u32_at(record + 12),
        ) else {
            return Err(format!("its table directory ({count} tables) is cut short"));
        };
        let end = u64::from(offset) + u64::from(length);
        if end > bytes.len() as u64 {
            return Err(format!(
                "table `{}` reaches byte {end}, past the end of the {}-byte file",
                String::from_utf8_lossy(name),
                bytes.len()
            ));
        }
        tables.insert(name.to_vec());
        if name == b"head" {
            let magic = u32_at(offset as usize + 12);
            if magic != Some(0x5F0F_3CF5) {
                return Err("its `head` table has a wrong magic number".to_owned());
            }
        }
    }
    let outlines: &[&[u8]] = &[b"glyf", b"CFF ", b"CFF2"];
    for required in [b"cmap", b"head", b"hhea", b"hmtx", b"maxp"] {
        if !tables.contains(&required[..]) {
            return Err(format!(
                "it lacks the `{}` table",
                String::from_utf8_lossy(required)
            ));
        }
    }
    if !outlines.iter().any(|t| tables.contains(*t)) {
        return Err("it has no glyph outlines (`glyf`, `CFF ` or `CFF2` table)".to_owned());
    }
    Ok(())
}
