//! The `spec` attribute of `NormclipConstrain`: the constraint of each of its N inputs, as text.
//!
//! ```text
//! spec  := item (';' item)*                 one item per input, in input order
//! item  := kind (',' key '=' value)*
//! kind  := maxNorm | minMaxNorm | unitNorm | nonNeg | radialConstraint
//! keys  := max, min, rate, eps: an f64 in Rust's shortest round-trip form (exact)
//!          axis: all | none | i(':'i)*   (null, [], or a list; negatives count from the end)
//!          mode: keras | projection
//! ```
//!
//! e.g. `maxNorm,max=3.0,axis=0,mode=keras,eps=1e-7;nonNeg`. A norm constraint carries every
//! key (no defaults here: JavaScript already applied Keras'), and decoding goes through the core's
//! validating constructors, so a kernel never runs a constraint the core would reject. The text is
//! an attribute, hence part of TensorFlow's eager kernel-cache key: one kernel (with its plans) per
//! distinct list of constraints.

use normclip_core::{Axes, Constraint, Mode};

/// The attribute text for `constraints`, one item per input.
pub fn encode(constraints: &[Constraint]) -> String {
    let items: Vec<String> = constraints.iter().map(encode_one).collect();
    items.join(";")
}

fn encode_one(constraint: &Constraint) -> String {
    let (kind, bounds) = match constraint {
        Constraint::MaxNorm { max_value, .. } => ("maxNorm", format!(",max={max_value:?}")),
        Constraint::MinMaxNorm {
            min_value,
            max_value,
            rate,
            ..
        } => (
            "minMaxNorm",
            format!(",min={min_value:?},max={max_value:?},rate={rate:?}"),
        ),
        Constraint::UnitNorm { .. } => ("unitNorm", String::new()),
        Constraint::NonNeg => return "nonNeg".into(),
        Constraint::Radial => return "radialConstraint".into(),
    };
    let options = constraint.options().expect("norm constraints have options");
    let axis = match &options.axes {
        Axes::All => "all".to_string(),
        Axes::List(list) if list.is_empty() => "none".to_string(),
        Axes::List(list) => list
            .iter()
            .map(i64::to_string)
            .collect::<Vec<_>>()
            .join(":"),
    };
    format!(
        "{kind}{bounds},axis={axis},mode={},eps={:?}",
        options.mode.name(),
        options.epsilon
    )
}

/// The constraints an attribute text describes; `Err` names what is wrong.
pub fn decode(text: &str) -> Result<Vec<Constraint>, String> {
    text.split(';')
        .enumerate()
        .map(|(index, item)| {
            decode_one(item).map_err(|e| format!("spec item {index} ({item:?}): {e}"))
        })
        .collect()
}

fn decode_one(item: &str) -> Result<Constraint, String> {
    let mut parts = item.split(',');
    let kind = parts.next().unwrap_or_default();
    let mut fields: Vec<(&str, &str)> = Vec::new();
    for part in parts {
        let (key, value) = part
            .split_once('=')
            .ok_or_else(|| format!("expected key=value, got {part:?}"))?;
        if fields.iter().any(|(k, _)| *k == key) {
            return Err(format!("{key} given twice"));
        }
        fields.push((key, value));
    }
    let mut take = |key: &str| -> Result<&str, String> {
        let position = fields
            .iter()
            .position(|(k, _)| *k == key)
            .ok_or_else(|| format!("{kind} needs {key}"))?;
        Ok(fields.remove(position).1)
    };
    let number = |text: &str, key: &str| -> Result<f64, String> {
        text.parse::<f64>()
            .map_err(|_| format!("{key}: expected a number, got {text:?}"))
    };
    let core = |e: normclip_core::Error| e.message;
    let constraint = match kind {
        "nonNeg" => Constraint::NonNeg,
        "radialConstraint" => Constraint::Radial,
        "maxNorm" | "minMaxNorm" | "unitNorm" => {
            let axes = axes(take("axis")?)?;
            let mode = Mode::parse(take("mode")?).map_err(core)?;
            let epsilon = number(take("eps")?, "eps")?;
            let constraint = match kind {
                "maxNorm" => Constraint::max_norm(number(take("max")?, "max")?, axes),
                "minMaxNorm" => Constraint::min_max_norm(
                    number(take("min")?, "min")?,
                    number(take("max")?, "max")?,
                    number(take("rate")?, "rate")?,
                    axes,
                ),
                _ => Constraint::unit_norm(axes),
            };
            constraint
                .and_then(|c| c.with_mode(mode))
                .and_then(|c| c.with_epsilon(epsilon))
                .map_err(core)?
        }
        other => return Err(format!("unknown constraint kind {other:?}")),
    };
    if let Some((key, _)) = fields.first() {
        return Err(format!("{kind} takes no {key}"));
    }
    Ok(constraint)
}

fn axes(text: &str) -> Result<Axes, String> {
    match text {
        "all" => Ok(Axes::All),
        "none" => Ok(Axes::List(Vec::new())),
        list => list
            .split(':')
            .map(|axis| {
                axis.parse::<i64>()
                    .map_err(|_| format!("axis: expected integers, got {axis:?}"))
            })
            .collect::<Result<Vec<_>, _>>()
            .map(Axes::List),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn every_kind() -> Vec<Constraint> {
        vec![
            Constraint::max_norm(3.0, Axes::default()).unwrap(),
            Constraint::max_norm(0.1 + 0.2, Axes::List(vec![0, 1, 2]))
                .unwrap()
                .with_mode(Mode::Projection)
                .unwrap(),
            Constraint::min_max_norm(0.5, 2.0, 0.3, Axes::All)
                .unwrap()
                .with_epsilon(1e-12)
                .unwrap(),
            Constraint::unit_norm(Axes::List(vec![]))
                .unwrap()
                .with_epsilon(1e-300)
                .unwrap(),
            Constraint::unit_norm(Axes::List(vec![-1])).unwrap(),
            Constraint::NonNeg,
            Constraint::Radial,
        ]
    }

    #[test]
    fn round_trips_every_kind_exactly() {
        let constraints = every_kind();
        let text = encode(&constraints);
        assert_eq!(decode(&text).unwrap(), constraints, "{text}");
        // Parameters are exact f64s, not float32 attributes.
        assert!(text.contains("max=0.30000000000000004"), "{text}");
    }

    #[test]
    fn documented_example() {
        let text = "maxNorm,max=3.0,axis=0,mode=keras,eps=1e-7;nonNeg";
        let expected = vec![
            Constraint::max_norm(3.0, Axes::List(vec![0])).unwrap(),
            Constraint::NonNeg,
        ];
        assert_eq!(decode(text).unwrap(), expected);
        assert_eq!(encode(&decode(text).unwrap()), text);
    }

    #[test]
    fn rejects_what_the_core_rejects() {
        for (text, needle) in [
            ("maxNorm,max=-1.0,axis=0,mode=keras,eps=1e-7", "maxValue"),
            ("maxNorm,max=NaN,axis=0,mode=keras,eps=1e-7", "maxValue"),
            (
                "minMaxNorm,min=2.0,max=1.0,rate=1.0,axis=0,mode=keras,eps=1e-7",
                "minValue",
            ),
            (
                "minMaxNorm,min=0.0,max=1.0,rate=2.0,axis=0,mode=keras,eps=1e-7",
                "rate",
            ),
            ("unitNorm,axis=0:0,mode=keras,eps=1e-7", "distinct"),
            ("unitNorm,axis=0,mode=other,eps=1e-7", "mode"),
            ("unitNorm,axis=0,mode=keras,eps=-1.0", "epsilon"),
        ] {
            let error = decode(text).unwrap_err();
            assert!(error.contains(needle), "{text}: {error}");
        }
    }

    #[test]
    fn rejects_malformed_text() {
        for (text, needle) in [
            ("", "unknown constraint kind"),
            ("maxnorm", "unknown constraint kind"),
            ("maxNorm,axis=0,mode=keras,eps=1e-7", "needs max"),
            (
                "maxNorm,max=1.0,max=2.0,axis=0,mode=keras,eps=1e-7",
                "twice",
            ),
            (
                "maxNorm,max=1.0,axis=0,mode=keras,eps=1e-7,rate=1.0",
                "takes no rate",
            ),
            ("maxNorm,max=1.0,axis=x,mode=keras,eps=1e-7", "axis"),
            ("maxNorm,max,axis=0,mode=keras,eps=1e-7", "key=value"),
            ("nonNeg,axis=0", "takes no axis"),
            ("nonNeg;", "item 1"),
        ] {
            let error = decode(text).unwrap_err();
            assert!(error.contains(needle), "{text:?}: {error}");
        }
    }
}
