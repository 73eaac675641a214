# Sourced by the LSR-GAN figure scripts: M = every metric for both renderers of a run
# (NAME@vae: the stage-1 VAE decoder; NAME@lsr: the LSR generator).
M=""
for r in vae lsr; do
  for m in fid fid-seeded sharpness-sp imagine-mse decode-variance imagine-class-acc; do M="$M,$m@$r"; done
done
M=${M#,}
