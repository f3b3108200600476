//! Thumbnails for a folder of pictures, in parallel: the `Pool.map` example of
//! "One article deals with Python multiprocessing", done for real.
//!
//! The Python original lists the `.jpeg` files of a folder, and
//! `pool.map(create_thumbnail, images)` opens each with PIL, shrinks it with
//! `im.thumbnail((75, 75), Image.ANTIALIAS)` (which keeps the aspect ratio) and
//! saves it under `thumbs/` in the same folder. Its author reports 6000
//! pictures in 27.9 s.
//!
//! There is no folder of photos to download here, so the example first paints
//! one: landscapes made up from a few sine waves and some grain, half of them
//! PNG and half JPEG, in a fresh directory under the system's temporary
//! directory. Then it makes the thumbnails twice, once in this process (plain
//! calls of the task function) and once on every CPU, prints both times and the
//! speedup, and removes the directory, whatever happened.
//!
//! `create_thumbnail` is an ordinary function marked `#[mproc::task]`; the
//! `image` crate does the decoding, shrinking and encoding in the worker
//! processes. A picture that cannot be read is reported as a value (`Err` with
//! the reason) instead of stopping the whole run.
//!
//! Size: `thumbnails [COUNT [MEGAPIXELS]]`. The default is 48 pictures of
//! 1.5 MP in a release build; a debug build, where decoding is many times
//! slower, defaults to 16 pictures of 0.5 MP so that it ends within seconds.
//!
//! Shows: `par_map!` over a list of paths, a task returning a `Result`, the
//! serial and parallel times side by side.
//!
//! ```text
//! cargo run --release --example thumbnails
//! cargo run --release --example thumbnails -- 200 2
//! ```

use std::path::{Path, PathBuf};
use std::time::Instant;

use image::{ImageFormat, Rgb, RgbImage};

/// The thumbnails' bounding box, as in the original.
const SIZE: (u32, u32) = (75, 75);
/// Where the thumbnails go, beside the pictures.
const SAVE_DIRECTORY: &str = "thumbs";

/// Opens `filename`, shrinks it to fit in 75×75 (aspect ratio kept) and saves it
/// under `thumbs/` next to it. Returns the thumbnail's width and height.
#[mproc::task]
fn create_thumbnail(filename: PathBuf) -> Result<(u32, u32), String> {
    let im = image::open(&filename).map_err(|e| format!("{}: {e}", filename.display()))?;
    let thumb = im.thumbnail(SIZE.0, SIZE.1);
    let (base, fname) = match (filename.parent(), filename.file_name()) {
        (Some(base), Some(fname)) => (base, fname),
        _ => return Err(format!("{}: not a file path", filename.display())),
    };
    let save_path = base.join(SAVE_DIRECTORY).join(fname);
    thumb.save(&save_path).map_err(|e| format!("{}: {e}", save_path.display()))?;
    Ok((thumb.width(), thumb.height()))
}

/// Paints picture number `seed` (`width` × `height`) and saves it as `path`; the
/// extension picks the format. Returns the file's size in bytes.
#[mproc::task]
fn paint_picture(path: PathBuf, seed: u32, width: u32, height: u32) -> Result<u64, String> {
    let img = landscape(seed, width, height);
    let format = ImageFormat::from_path(&path).map_err(|e| e.to_string())?;
    img.save_with_format(&path, format).map_err(|e| format!("{}: {e}", path.display()))?;
    std::fs::metadata(&path).map(|m| m.len()).map_err(|e| e.to_string())
}

/// A made-up landscape: a sky, a sun, three ridges of hills and some grain,
/// different for every `seed`.
fn landscape(seed: u32, width: u32, height: u32) -> RgbImage {
    let s = seed as f32;
    let (w, h) = (width as f32, height as f32);
    let sun = (w * (0.2 + 0.6 * hash01(seed, 1)), h * (0.15 + 0.2 * hash01(seed, 2)), h * 0.08);
    // Each ridge: its colour, and the height of its top in every column.
    let ridges: Vec<([f32; 3], Vec<f32>)> = (0..3u32)
        .map(|i| {
            let base = h * (0.45 + 0.15 * i as f32);
            let amplitude = h * (0.05 + 0.08 * hash01(seed, 10 + i));
            let wavelength = w / (1.5 + 3.0 * hash01(seed, 20 + i));
            let phase = s * 0.7 + i as f32;
            let tops = (0..width)
                .map(|x| base - amplitude * (x as f32 / wavelength * std::f32::consts::TAU + phase).sin())
                .collect();
            let colour = [40.0 + 20.0 * i as f32, 140.0 - 35.0 * i as f32, 50.0 + 10.0 * s % 40.0];
            (colour, tops)
        })
        .collect();
    RgbImage::from_fn(width, height, |x, y| {
        let (xf, yf) = (x as f32, y as f32);
        let t = yf / h;
        let mut c = [90.0 + 120.0 * t, 150.0 + 80.0 * t, 235.0 - 40.0 * t];
        let (dx, dy) = (xf - sun.0, yf - sun.1);
        if dx * dx + dy * dy < sun.2 * sun.2 {
            c = [255.0, 220.0, 120.0];
        }
        for (colour, tops) in &ridges {
            let top = tops[x as usize];
            if yf > top {
                let shade = 1.0 - 0.3 * ((yf - top) / h);
                c = colour.map(|v| v * shade);
            }
        }
        // Grain, so that the files are as hard to compress as photographs.
        let grain = (hash01(x.wrapping_mul(7919) ^ y.wrapping_mul(104_729), seed) - 0.5) * 24.0;
        Rgb(c.map(|v| (v + grain).clamp(0.0, 255.0) as u8))
    })
}

/// A cheap hash of two numbers to [0, 1).
fn hash01(a: u32, b: u32) -> f32 {
    let mut x = a.wrapping_mul(0x9E37_79B9) ^ b.wrapping_mul(0x85EB_CA6B);
    x ^= x >> 16;
    x = x.wrapping_mul(0x7FEB_352D);
    x ^= x >> 15;
    (x >> 8) as f32 / (1u32 << 24) as f32
}

/// The picture files in `folder`, sorted (the original keeps names containing `jpeg`).
fn get_image_paths(folder: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut paths = Vec::new();
    for entry in std::fs::read_dir(folder)? {
        let path = entry?.path();
        if matches!(path.extension().and_then(|e| e.to_str()), Some("png" | "jpeg" | "jpg")) {
            paths.push(path);
        }
    }
    paths.sort();
    Ok(paths)
}

/// A directory that is removed, with everything in it, when this value is dropped.
struct TempDir(PathBuf);

impl TempDir {
    fn new() -> std::io::Result<TempDir> {
        let path = std::env::temp_dir().join(format!("mproc-thumbnails-{}", std::process::id()));
        std::fs::create_dir_all(&path)?;
        Ok(TempDir(path))
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        if std::fs::remove_dir_all(&self.0).is_ok() {
            println!("removed {}", self.0.display());
        }
    }
}

/// `COUNT` and `MEGAPIXELS` from the command line, or the defaults for this build.
fn arguments() -> Result<(usize, f64), String> {
    let (default_count, default_mp) = if cfg!(debug_assertions) { (16, 0.5) } else { (48, 1.5) };
    let mut args = std::env::args().skip(1);
    let count = match args.next() {
        Some(a) => a.parse().map_err(|_| format!("COUNT must be a whole number, not {a:?}"))?,
        None => default_count,
    };
    let megapixels = match args.next() {
        Some(a) => a.parse().map_err(|_| format!("MEGAPIXELS must be a number, not {a:?}"))?,
        None => default_mp,
    };
    Ok((count, megapixels))
}

#[mproc::main]
fn main() -> Result<(), mproc::Error> {
    let (count, megapixels) = match arguments() {
        Ok(a) => a,
        Err(message) => {
            eprintln!("{message}\nusage: thumbnails [COUNT [MEGAPIXELS]]");
            std::process::exit(2);
        }
    };
    // 3:2 pictures of about `megapixels` million pixels.
    let width = ((megapixels * 1.5e6).sqrt() as u32).max(8);
    let height = (width * 2 / 3).max(8);

    let folder = TempDir::new()?;
    std::fs::create_dir(folder.0.join(SAVE_DIRECTORY))?;

    // The pictures: painted in parallel too, so that the setup does not take
    // longer than the demonstration. This first par_map! also starts the
    // global pool, so the timings below do not include starting workers.
    let started = Instant::now();
    let jobs: Vec<(PathBuf, u32, u32, u32)> = (0..count)
        .map(|i| {
            let ext = if i % 2 == 0 { "jpeg" } else { "png" };
            (folder.0.join(format!("picture-{i:04}.{ext}")), i as u32, width, height)
        })
        .collect();
    let sizes = mproc::par_map!(paint_picture, jobs)?;
    let bytes: u64 =
        sizes.into_iter().collect::<Result<Vec<u64>, String>>().map_err(std::io::Error::other)?.iter().sum();
    println!(
        "painted {count} pictures of {width}×{height} ({:.1} MP, PNG and JPEG, {:.0} MB) into {} in {:.2} s",
        f64::from(width * height) / 1e6,
        bytes as f64 / 1e6,
        folder.0.display(),
        started.elapsed().as_secs_f64()
    );

    let images = get_image_paths(&folder.0)?;

    // Serial: plain calls, in this process.
    let started = Instant::now();
    let serial: Vec<Result<(u32, u32), String>> = images.iter().cloned().map(create_thumbnail).collect();
    let serial_time = started.elapsed();
    report("serial  ", &serial, serial_time.as_secs_f64());

    for thumb in std::fs::read_dir(folder.0.join(SAVE_DIRECTORY))? {
        std::fs::remove_file(thumb?.path())?;
    }

    // Parallel: the same calls on the global pool, one worker per CPU.
    let started = Instant::now();
    let parallel = mproc::par_map!(create_thumbnail, images.clone())?;
    let parallel_time = started.elapsed();
    report("parallel", &parallel, parallel_time.as_secs_f64());

    let written = std::fs::read_dir(folder.0.join(SAVE_DIRECTORY))?.count();
    println!(
        "speedup: {:.2}× with {} workers; {SAVE_DIRECTORY}/ holds {written} thumbnails",
        serial_time.as_secs_f64() / parallel_time.as_secs_f64(),
        mproc::cpu_count(),
    );
    if let (Some(path), Some(Ok((w, h)))) = (images.first(), parallel.first()) {
        println!("for example {} → {SAVE_DIRECTORY}/, {w}×{h}", path.file_name().unwrap_or_default().to_string_lossy());
    }
    Ok(())
}

/// One line per run: how many thumbnails, how long, and the first failure if any.
fn report(label: &str, results: &[Result<(u32, u32), String>], seconds: f64) {
    let failed: Vec<&String> = results.iter().filter_map(|r| r.as_ref().err()).collect();
    println!("{label}: {} thumbnails in {seconds:.2} s", results.len() - failed.len());
    if let Some(first) = failed.first() {
        println!("  {} failed, first: {first}", failed.len());
    }
}
