//! Which faults a run injects, and when: a schedule derived from the seed
//! alone, so that `--seed N` gives the same plan again (the interleavings of
//! processes, of course, differ from run to run).
//!
//! Each incarnation of each writer gets one [`Plan`]: a fault, and after how
//! many of its loop iterations (acquisitions, or storm rounds) it strikes.
//! A failpoint is armed in the writer itself and kills it with SIGKILL when it
//! reaches that step of the protocol (`rvlf_lock::failpoint`); `kill` is a
//! SIGKILL the harness sends at that moment, wherever the writer is.

use rvlf_lock::failpoint::Point;

/// One kind of fault.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Fault {
    /// The writer dies at this protocol step.
    Point(Point),
    /// The harness sends SIGKILL, wherever the writer is.
    Kill,
}

impl Fault {
    pub const ALL: [Fault; 7] = [
        Fault::Point(Point::AfterPublish),
        Fault::Point(Point::AfterRead),
        Fault::Point(Point::BeforeBreakUnlink),
        Fault::Point(Point::AfterBreakUnlink),
        Fault::Point(Point::BeforeReleaseUnlink),
        Fault::Point(Point::AfterReleaseUnlink),
        Fault::Kill,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Fault::Point(p) => p.name(),
            Fault::Kill => "kill",
        }
    }

    /// A failpoint only works in a writer running this library in-process.
    pub fn needs_in_process(self) -> bool {
        matches!(self, Fault::Point(_))
    }
}

/// Parse `--faults`: `all`, `none`, or names separated by commas.
pub fn parse(spec: &str) -> Result<Vec<Fault>, String> {
    let mut faults = Vec::new();
    for word in spec.split(',').map(str::trim).filter(|w| !w.is_empty()) {
        match word {
            "all" => faults.extend(Fault::ALL),
            "none" => {}
            "kill" => faults.push(Fault::Kill),
            name => match Point::from_name(name) {
                Some(p) => faults.push(Fault::Point(p)),
                None => {
                    return Err(format!(
                        "unknown fault {name:?}; faults: all, none, kill, {}",
                        Point::ALL.map(Point::name).join(", ")
                    ))
                }
            },
        }
    }
    faults.sort();
    faults.dedup();
    Ok(faults)
}

/// The names of `faults`, for reports.
pub fn names(faults: &[Fault]) -> String {
    if faults.is_empty() {
        return "none".into();
    }
    faults
        .iter()
        .map(|f| f.name())
        .collect::<Vec<_>>()
        .join(",")
}

/// SplitMix64: small, fast, and good enough to spread a schedule.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in 0..n (0 when n is 0).
    pub fn below(&mut self, n: u64) -> u64 {
        if n == 0 {
            0
        } else {
            self.next_u64() % n
        }
    }
}

/// What one incarnation of a writer will suffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Plan {
    pub fault: Option<Fault>,
    /// Loop iterations of this incarnation before the fault is armed or sent.
    pub after: u64,
}

impl Plan {
    pub const NONE: Plan = Plan {
        fault: None,
        after: 0,
    };
}

/// The plan of incarnation `incarnation` of writer `writer`: a fault drawn
/// uniformly from those that apply, struck after a number of iterations
/// drawn uniformly from 0..2*`every` (mean `every`). Depends on nothing but
/// its arguments.
pub fn plan(
    seed: u64,
    writer: usize,
    incarnation: u32,
    faults: &[Fault],
    every: u64,
    in_process: bool,
) -> Plan {
    let usable: Vec<Fault> = faults
        .iter()
        .copied()
        .filter(|f| in_process || !f.needs_in_process())
        .collect();
    if usable.is_empty() {
        return Plan::NONE;
    }
    let mut rng = Rng::new(seed ^ ((writer as u64) << 32 | u64::from(incarnation)));
    // Stir, so that neighbouring writers do not start from neighbouring states.
    rng.next_u64();
    let fault = usable[rng.below(usable.len() as u64) as usize];
    Plan {
        fault: Some(fault),
        after: rng.below(2 * every.max(1)),
    }
}

/// A fresh seed from the operating system.
pub fn random_seed() -> u64 {
    let mut b = [0u8; 8];
    if getrandom::fill(&mut b).is_err() {
        return super::sys::mono_ns();
    }
    u64::from_le_bytes(b)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fault_lists_parse_and_reject_unknown_names() {
        assert_eq!(parse("all"), Ok(Fault::ALL.to_vec()));
        assert_eq!(parse("none"), Ok(vec![]));
        assert_eq!(
            parse("kill, after-publish,kill"),
            Ok(vec![Fault::Point(Point::AfterPublish), Fault::Kill])
        );
        assert!(parse("after-lunch").is_err());
    }

    #[test]
    fn the_schedule_depends_on_the_seed_alone() {
        let a: Vec<Plan> = (0..20)
            .map(|i| plan(7, i % 4, i as u32, &Fault::ALL, 10, true))
            .collect();
        let b: Vec<Plan> = (0..20)
            .map(|i| plan(7, i % 4, i as u32, &Fault::ALL, 10, true))
            .collect();
        let c: Vec<Plan> = (0..20)
            .map(|i| plan(8, i % 4, i as u32, &Fault::ALL, 10, true))
            .collect();
        assert_eq!(a, b);
        assert_ne!(a, c);
        assert!(a.iter().all(|p| p.fault.is_some() && p.after < 20));
    }

    #[test]
    fn adapters_get_only_the_faults_the_harness_can_inject() {
        let p = plan(1, 0, 0, &[Fault::Point(Point::AfterPublish)], 5, false);
        assert_eq!(p, Plan::NONE);
        let p = plan(1, 0, 0, &Fault::ALL, 5, false);
        assert_eq!(p.fault, Some(Fault::Kill));
    }
}
