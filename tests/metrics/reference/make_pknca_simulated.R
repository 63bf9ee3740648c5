# Concentrations of PKNCA's simulated test subjects, written out for the cellkin conformance
# suite (tests/metrics/test_nca_pknca.py).
#
# PKNCA's tests (tests/testthat/helper-generate_data.R, `generate.conc(2, 1, 0:24)`) simulate
# a one-compartment oral model, C(t) = D*ka/(V*(ka - kel))*(exp(-kel*t) - exp(-ka*t)) with
# D = 1, V = 1, ka = 1, kel = 0.05, times 0..24, times a log-normal residual exp(N(0, 0.1^2))
# drawn after set.seed(5), subject 1 then subject 2. This script draws the same numbers with
# R's default generator (Mersenne-Twister, Inversion) and writes them with 17 significant
# digits. Run: Rscript make_pknca_simulated.R (R 4.2.2 produced pknca_simulated.csv).
set.seed(5)
times <- 0:24
curve <- 1 * 1 / (1 * (1 - 0.05)) * (exp(-0.05 * times) - exp(-1 * times))
rows <- list()
for (id in 1:2) {
  conc <- exp(rnorm(length(times), mean = 0, sd = 0.1)) * curve
  rows[[id]] <- data.frame(ID = id, time = times, conc = sprintf("%.17g", conc))
}
write.csv(do.call(rbind, rows), "pknca_simulated.csv", row.names = FALSE, quote = FALSE)
