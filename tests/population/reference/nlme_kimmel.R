# R nlme reference for cellkin.fit_population on a smooth catalogue model (Kimmel 2021).
#
# Usage (from the repository root; Debian: apt-get install -y r-base-core r-cran-nlme
# r-cran-desolve; about a minute):
#
#     Rscript tests/population/reference/nlme_kimmel.R
#
# Reads smooth_kimmel.csv (written by make_reference_data.py) and fits, by nlme's
# Lindstrom-Bates algorithm (maximum likelihood), the same hierarchical model cellkin fits:
# log(y_ij) = log C(t_ij; psi_i) + e_ij, e_ij ~ N(0, sigma^2), with
# log k_c,i = mu_kc + eta_1i, log rho_c,i = mu_rhoc + eta_2i, log b_i = mu_b + eta_3i,
# eta ~ N(0, diag(omega^2)), every other parameter at its published ZUMA-1 value. C(t) is the
# CAR-T level of the T-cell competition model (Kimmel, Locke & Altrock 2021, Proc R Soc B
# 288:20210229, doi:10.1098/rspb.2021.0229), integrated here by deSolve's lsoda from the
# paper's equations, written without reference to cellkin's code:
#   N' = -r_N N ln((N + C)/K_N)
#   C' = -r_C(T) C ln((N + C)/K_C),  r_C(T) = rho_C + b (T - K_N)^2 / (a T^2 + (T - K_N)^2)
#   T = N + C, N(0) = 6, C(0) = 1.8e8 / 5e8 cells/uL.
# The model is smooth in its parameters, which nlme's PNLS step (Gauss-Newton on finite
# differences) needs; the Stein closed form is not (kinked at Tmax: PNLS fails there).
# Writes nlme_kimmel_estimates.csv: kind, parameter, estimate, se (fixed effects on the log
# scale; omega = SD of each random effect on the log scale; sigma on the log scale), and the
# log-likelihood.

suppressPackageStartupMessages({
  library(nlme)
  library(deSolve)
})

args <- commandArgs(trailingOnly = FALSE)
script <- sub("^--file=", "", args[grep("^--file=", args)])
here <- if (length(script)) dirname(normalizePath(script)) else "."

published <- c(k_n = 500, r_n = 0.17, a = 0.423)
start_state <- c(n = 6, c = 1.8e8 / 5e8)

kimmel_rhs <- function(t, y, p) {
  total <- y[1] + y[2]
  shortfall <- (total - published[["k_n"]])^2
  r_c <- p[["rho_c"]] + p[["b"]] * shortfall / (published[["a"]] * total^2 + shortfall)
  list(c(-published[["r_n"]] * y[1] * log(total / published[["k_n"]]),
         -r_c * y[2] * log(total / p[["k_c"]])))
}

kimmel_level <- function(times, k_c, rho_c, b) {
  grid <- sort(unique(c(0, times)))
  out <- lsoda(start_state, grid, kimmel_rhs, c(k_c = k_c, rho_c = rho_c, b = b),
               rtol = 1e-10, atol = 1e-12)
  out[match(times, out[, "time"]), 3]
}

# log C for every row; rows of one subject share one parameter set, solved once.
log_kimmel <- function(time, lkc, lrhoc, lb, subject) {
  result <- numeric(length(time))
  key <- paste(subject, lkc, lrhoc, lb)
  for (k in unique(key)) {
    rows <- which(key == k)
    i <- rows[1]
    result[rows] <- log(kimmel_level(time[rows], exp(lkc[i]), exp(lrhoc[i]), exp(lb[i])))
  }
  result
}

data <- read.csv(file.path(here, "smooth_kimmel.csv"))
data$log_value <- log(data$value)
data$subject <- factor(data$subject)
grouped <- groupedData(log_value ~ time | subject, data = data)

fit <- nlme(
  log_value ~ log_kimmel(time, lkc, lrhoc, lb, subject),
  data = grouped,
  fixed = lkc + lrhoc + lb ~ 1,
  random = pdDiag(lkc + lrhoc + lb ~ 1),
  start = c(lkc = log(139), lrhoc = log(0.0251), lb = log(0.525)),
  method = "ML",
  control = nlmeControl(msMaxIter = 200, maxIter = 100),
  verbose = TRUE
)

fixed <- summary(fit)$tTable
omega <- as.numeric(VarCorr(fit)[1:3, "StdDev"])
names <- c("k_c", "rho_c", "b")
estimates <- rbind(
  data.frame(kind = "typical_log", parameter = names, estimate = fixed[, "Value"],
             se = fixed[, "Std.Error"]),
  data.frame(kind = "omega", parameter = names, estimate = omega, se = NA),
  data.frame(kind = "sigma", parameter = "sigma", estimate = fit$sigma, se = NA),
  data.frame(kind = "loglik", parameter = "loglik", estimate = as.numeric(logLik(fit)), se = NA)
)
write.csv(estimates, file.path(here, "nlme_kimmel_estimates.csv"), row.names = FALSE)
print(estimates, digits = 6)
cat(sprintf("nlme %s, R %s\n", packageVersion("nlme"), getRversion()))
