//! Narration for the examples: each step is printed as it completes, with the time since
//! the start and its own duration, and a summary table closes the run.

use std::time::Instant;

/// Prints steps as they complete and keeps them for the summary.
pub struct Narrator {
    started: Instant,
    steps: Vec<Step>,
}

struct Step {
    title: String,
    took_ms: f64,
    outcome: String,
}

impl Narrator {
    /// A narrator whose clock starts now.
    pub fn new() -> Narrator {
        Narrator {
            started: Instant::now(),
            steps: Vec::new(),
        }
    }

    /// Records and prints a step that began at `started`.
    pub fn step(&mut self, title: &str, started: Instant, outcome: impl Into<String>) {
        let outcome = outcome.into();
        let took_ms = started.elapsed().as_secs_f64() * 1000.0;
        println!(
            "[{:>8.1} ms] {title}\n             {outcome}",
            self.started.elapsed().as_secs_f64() * 1000.0
        );
        self.steps.push(Step {
            title: title.to_owned(),
            took_ms,
            outcome,
        });
    }

    /// Prints a line of commentary between steps.
    pub fn note(&self, text: &str) {
        println!("             ({text})");
    }

    /// The summary table: every step, its duration and (shortened) outcome.
    pub fn summary(&self) {
        println!("\n{:<3} {:<60} {:>10}  outcome", "#", "step", "took");
        for (i, step) in self.steps.iter().enumerate() {
            let mut outcome: String = step.outcome.chars().take(70).collect();
            if step.outcome.chars().count() > 70 {
                outcome.push('…');
            }
            println!(
                "{:<3} {:<60} {:>8.1}ms  {outcome}",
                i + 1,
                step.title,
                step.took_ms
            );
        }
        println!(
            "\n{} steps in {:.1} s",
            self.steps.len(),
            self.started.elapsed().as_secs_f64()
        );
    }
}

impl Default for Narrator {
    fn default() -> Self {
        Narrator::new()
    }
}
