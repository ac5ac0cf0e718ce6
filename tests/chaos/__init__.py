"""The chaos run (`make chaos`; a short one in `make test`): mixed payments through our gateway
on real federations and real lnd while its processes are killed and guardians restarted, and
books that must balance to the msat after. world.py builds the world, driver.py makes the
payments and the killings, books.py counts, run.py ties them together."""
