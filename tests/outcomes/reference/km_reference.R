# Reference values for cellkin.outcomes.kaplan_meier, from R's survival package.
#
# Run from this folder:   Rscript km_reference.R
# Writes km_reference_table.csv, km_reference_median.csv, km_reference_landmarks.csv and
# km_reference_logrank.csv beside this script. Numbers are written with 17 significant digits.
# The same data are written into tests/outcomes/test_survival.py (KM_DATA); keep both in step.
#
# Data: 34 subjects in 4 dose levels, times in days, event 1 = progression/death, 0 = censored.
# Built to exercise: tied event times, events and censoring at the same time, survival that
# reaches exactly 0.5 (median = midpoint rule, level 2), survival that reaches 0 (level 3),
# a median that is not reached (level 4), and a last observation that is censored.
library(survival)

km <- data.frame(
  dose_level = c(rep(1, 12), rep(2, 10), rep(3, 8), rep(4, 4)),
  time = c(
    10, 25, 25, 40, 61, 61, 61, 90, 120, 150, 200, 365,   # level 1
    15, 30, 30, 45, 91, 120, 183, 200, 300, 400,          # level 2
    5, 12, 12, 33, 50, 75, 75, 110,                       # level 3
    30, 61, 100, 365                                      # level 4
  ),
  event = c(
    1, 1, 0, 1, 1, 0, 1, 1, 0, 1, 0, 0,
    1, 1, 1, 1, 1, 0, 1, 0, 1, 0,
    1, 1, 1, 0, 1, 1, 0, 1,
    1, 0, 1, 0
  )
)
landmarks <- c(30, 61, 91, 183, 365)
fmt <- function(x) ifelse(is.na(x), "NA", sprintf("%.17g", x))

tables <- list(); medians <- list(); marks <- list()
for (conf_type in c("log", "log-log", "plain")) {
  for (conf_int in c(0.95, 0.90)) {
    fits <- list(
      all = survfit(Surv(time, event) ~ 1, data = km, conf.type = conf_type, conf.int = conf_int),
      by = survfit(Surv(time, event) ~ dose_level, data = km, conf.type = conf_type,
                   conf.int = conf_int)
    )
    for (kind in names(fits)) {
      fit <- fits[[kind]]
      if (kind == "all") {
        group <- rep("all", length(fit$time))
        mgroup <- "all"
      } else {
        group <- rep(sub("dose_level=", "", names(fit$strata)), fit$strata)
        mgroup <- sub("dose_level=", "", names(fit$strata))
      }
      tables[[length(tables) + 1]] <- data.frame(
        conf_type = conf_type, confidence = conf_int, group = group, time = fit$time,
        at_risk = fit$n.risk, events = fit$n.event, censored = fit$n.censor,
        survival = fmt(fit$surv), std_err = fmt(fit$std.err), ci_lower = fmt(fit$lower),
        ci_upper = fmt(fit$upper)
      )
      q <- quantile(fit, probs = 0.5)
      medians[[length(medians) + 1]] <- data.frame(
        conf_type = conf_type, confidence = conf_int, group = mgroup,
        median = fmt(as.vector(q$quantile)), ci_lower = fmt(as.vector(q$lower)),
        ci_upper = fmt(as.vector(q$upper))
      )
      s <- summary(fit, times = landmarks, extend = TRUE)
      sg <- if (kind == "all") rep("all", length(s$time)) else sub("dose_level=", "", s$strata)
      marks[[length(marks) + 1]] <- data.frame(
        conf_type = conf_type, confidence = conf_int, group = sg, time = s$time,
        at_risk = s$n.risk, events = s$n.event, censored = s$n.censor, survival = fmt(s$surv),
        ci_lower = fmt(s$lower), ci_upper = fmt(s$upper)
      )
    }
  }
}
write.csv(do.call(rbind, tables), "km_reference_table.csv", row.names = FALSE, quote = FALSE)
write.csv(do.call(rbind, medians), "km_reference_median.csv", row.names = FALSE, quote = FALSE)
write.csv(do.call(rbind, marks), "km_reference_landmarks.csv", row.names = FALSE, quote = FALSE)

lr <- survdiff(Surv(time, event) ~ dose_level, data = km)
lr_df <- length(lr$n) - 1
write.csv(
  data.frame(test = "logrank", chisq = fmt(lr$chisq), df = lr_df,
             p_value = fmt(pchisq(lr$chisq, lr_df, lower.tail = FALSE)),
             r_version = R.version.string,
             survival_version = as.character(packageVersion("survival"))),
  "km_reference_logrank.csv", row.names = FALSE, quote = FALSE
)
